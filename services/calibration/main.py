from shared.runtime import run
from services.calibration.app import running
from services.calibration.settings import CalibrationSettings


def main() -> None:
    run("calibration", CalibrationSettings, running)


if __name__ == "__main__":
    main()
