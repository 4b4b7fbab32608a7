"""The proctor console (seats, access codes, extensions, incidents): built on the exam room."""
