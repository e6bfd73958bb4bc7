from shared.runtime import run
from services.calibration.app import running


def main() -> None:
    run("calibration", running)


if __name__ == "__main__":
    main()
