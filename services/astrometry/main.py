from shared.runtime import run
from services.astrometry.app import running
from services.astrometry.settings import AstrometrySettings


def main() -> None:
    run("astrometry", AstrometrySettings, running)


if __name__ == "__main__":
    main()
