"""Merit lists: the ranking rule and its presets, the ranking itself (pure), lists in the database (build, tie
decisions, publish), outside scores, exports (CSV, XLSX, PDF), score reports; the merit pages (/board/merit) and
the merit and scores commands."""
