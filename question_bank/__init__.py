"""The question bank: topics, questions with versions, imports and the bank pages."""
