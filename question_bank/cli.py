from flask.cli import AppGroup
bank = AppGroup("bank", help="The question bank: import, export, stats.")
