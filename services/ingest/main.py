from services.ingest.app import running
from services.ingest.settings import IngestSettings
from shared.runtime import run


def main() -> None:
    run("ingest", IngestSettings, running)


if __name__ == "__main__":
    main()
