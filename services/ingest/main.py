from shared.runtime import run
from services.ingest.app import running
from services.ingest.settings import IngestSettings


def main() -> None:
    run("ingest", IngestSettings, running)


if __name__ == "__main__":
    main()
