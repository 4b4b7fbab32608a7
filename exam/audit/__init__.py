"""The audit: the hash chain with signed checkpoints (chain.py, the one module other areas import), the auditor's
pages, the independent re-tally, the export bundle and the audit commands."""
