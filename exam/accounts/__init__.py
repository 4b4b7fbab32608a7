"""Staff accounts: users and roles, passwords, TOTP, recovery codes, lockout; the sign-in pages and users commands."""
