from shared.runtime import run
from services.lightcurve.app import running


def main() -> None:
    run("lightcurve", running)


if __name__ == "__main__":
    main()
