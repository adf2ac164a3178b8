// EndedView is the screen after a consult, or after this person's part in
// it: ended by a clinician (by whom, after how long), left, removed,
// replaced by a newer tab, or with an invite that expired. It says what
// happened in plain words and offers the way back to the start.

import { $ } from './ui.js';

export class EndedView {
  constructor({ onBack }) {
    $('ended-back').addEventListener('click', () => onBack());
  }

  show(title, text, back = 'Back to the start') {
    $('ended-title').textContent = title;
    $('ended-text').textContent = text;
    $('ended-back').textContent = back;
    $('room-view').hidden = true;
    $('lobby').hidden = true;
    $('ended').hidden = false;
    document.title = 'Consult';
    $('ended-back').focus();
  }

  hide() {
    $('ended').hidden = true;
  }
}

// endedText words an "ended" message for the people in the consult.
export function endedText(e, myId) {
  const by = e.by === myId ? 'You' : e.byName || 'The clinician';
  const mins = Math.round((e.durationMs || 0) / 60000);
  const took = !e.durationMs ? '' : mins < 1 ? ' after less than a minute' : mins === 1 ? ' after 1 minute' : ` after ${mins} minutes`;
  return `${by} ended the consultation${took}.`;
}

// GOODBYES says what a final goodbye means for the person.
export const GOODBYES = {
  removed: ['You were removed from the consultation', 'The clinician removed you from this consultation. If this is a mistake, contact the clinic.'],
  replaced: ['You joined from somewhere else', 'This consultation is open in another tab or on another device, so this page stepped out. Use the other one, or rejoin here.'],
  'token-expired': ['Your invitation has expired', 'The link you used to join is no longer valid. Ask the clinic for a new one.'],
};
