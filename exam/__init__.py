"""The exam system, one package per area: core (what every area stands on), accounts, audit, setup (what the board
prepares), room (the candidate's exam room), grading and merit; ``exam.app.create_app`` wires them together.

This file imports nothing: see ``exam/app.py`` for why.
"""
