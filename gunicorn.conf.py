"""gunicorn's settings for the exam server; gunicorn reads this file from the folder it starts in.

    .venv/bin/gunicorn -b 127.0.0.1:8000 wsgi:app

Options given on the command line win over these."""
import gc

# Two processes per core would only make them fight over the cores; threads let a room's requests wait
# for their group commit together (docs/deploy.md: 32 per worker held a lab of 10,000 machines).
workers = 2
worker_class = "gthread"
threads = 32
keepalive = 75  # lab machines keep their connection between saves
backlog = 4096  # a whole lab pressing Start at the same second


def post_worker_init(worker):
    """The app is loaded: what it keeps for good (routes, mappers, settings) is put out of the cyclic
    collector's sight, whose full passes over it paused requests for tens of milliseconds."""
    gc.collect()
    gc.freeze()
