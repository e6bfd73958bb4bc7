from services.calibration.app import running
from services.calibration.settings import CalibrationSettings
from shared.runtime import run


def main() -> None:
    run("calibration", CalibrationSettings, running)


if __name__ == "__main__":
    main()
