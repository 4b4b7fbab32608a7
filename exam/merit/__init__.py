"""Merit lists: the ranking rule and its presets (rule), the ranking itself (ranking, pure), the stored form of a
list (content), lists in the database (lists: build, tie decisions, publish, read), what a key correction would
change (correction_preview), outside scores, exports (CSV, XLSX, PDF), score reports; the merit pages
(/board/merit) and the merit and scores commands."""
