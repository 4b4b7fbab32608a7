"""The candidate's exam room: lab-machine sessions, the server's clock, sequenced saves with their hash-chained
history, submission and the deadline sweep; the one door for the room's writes (group commit, the writer
process); the JSON API (/api/v1), the lane beneath Flask, and the candidate's pages (/thi/)."""
