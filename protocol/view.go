package protocol

import "errors"

// Adaptive stream and dynacast (docs/simulcast.md, "Views and dynacast").
// A member tells the server how it shows each video track it receives
// (track-view: the picture's size on its screen, and whether it can be
// seen), and gets no larger layer of a simulcast track than that needs.
// The server in turn tells a publisher which of its layers somebody needs
// (layers), and the publisher may stop encoding the others.
const (
	TypeTrackView = "track-view" // client: TrackView
	TypeLayers    = "layers"     // server, to a publisher: Layers
)

// MaxViewPixels bounds a track-view's dimensions.
const MaxViewPixels = 16384

// TrackView is how a member shows a track it receives: the size of the
// picture on its screen in device pixels (0 if not laid out yet), and
// whether it can be seen at all (a tile scrolled away, a page in the
// background: false).
type TrackView struct {
	Track   string `json:"track"`
	Width   int    `json:"width"`
	Height  int    `json:"height"`
	Visible bool   `json:"visible"`
}

func (v *TrackView) validate() error {
	switch {
	case v.Track == "" || len(v.Track) > 160:
		return errors.New("track missing or too long")
	case v.Width < 0 || v.Width > MaxViewPixels || v.Height < 0 || v.Height > MaxViewPixels:
		return errors.New("width and height must be from 0 to 16384")
	}
	return nil
}

// Layers tells a publisher which encodings (by rid) of its simulcast
// track somebody needs (Active: send them) and which nobody does
// (Inactive: it may stop them until asked again). The lowest layer is
// always active.
type Layers struct {
	Track    string   `json:"track"`
	Active   []string `json:"active"`
	Inactive []string `json:"inactive"`
}
