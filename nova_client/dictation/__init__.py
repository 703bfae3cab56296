"""Voice typing (`nova type`): a live session's partials and finals become keystrokes in the
focused window.

The pure parts — which utterances are commands (`commands`), how utterances join up as a person
types them (`spacing`), and what to type or erase for each event (`editor`) — know nothing of
X11 or any keyboard; `typers`, `x11`, `hotkey` and `control` are the platform ends, and
`dictation` wires them to the live session.
"""
