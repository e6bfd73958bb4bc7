from shared.runtime import run
from services.astrometry.app import running


def main() -> None:
    run("astrometry", running)


if __name__ == "__main__":
    main()
