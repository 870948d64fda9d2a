"""RQ worker: builds the app once, then runs the worker with its scheduler (no gevent here)."""

from expense_sync import create_app
from expense_sync.rq_worker import make_worker, redis_connection

app = create_app()


def main() -> None:
    connection = redis_connection(app.config["REDIS_URL"])
    with app.app_context():
        make_worker(app, connection).work(with_scheduler=True, logging_level="INFO")


if __name__ == "__main__":
    main()
