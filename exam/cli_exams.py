"""Commands about exams, sittings and candidates: attached to the groups of exam.cli."""
