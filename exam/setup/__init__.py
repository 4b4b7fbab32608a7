"""What the board prepares before a sitting: the exam and its specification, publication, sittings, the roster,
every candidate's paper; the board's pages (/board/) and the exam, sitting and candidates commands."""
