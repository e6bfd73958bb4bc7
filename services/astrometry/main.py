from services.astrometry.app import running
from services.astrometry.settings import AstrometrySettings
from shared.runtime import run


def main() -> None:
    run("astrometry", AstrometrySettings, running)


if __name__ == "__main__":
    main()
