from shared.runtime import run
from services.ingest.app import running


def main() -> None:
    run("ingest", running)


if __name__ == "__main__":
    main()
