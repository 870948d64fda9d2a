"""RQ's cron scheduler: builds the app once, then queues the scheduled-sync dispatcher every
minute (no gevent here). Any number may run: each dispatcher's claims are atomic."""

from expense_sync import create_app
from expense_sync.dispatch import make_scheduler
from expense_sync.rq_worker import redis_connection

app = create_app()


def main() -> None:
    make_scheduler(app, redis_connection(app.config["REDIS_URL"])).start()


if __name__ == "__main__":
    main()
