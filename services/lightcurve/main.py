from services.lightcurve.app import running
from services.lightcurve.settings import LightcurveSettings
from shared.runtime import run


def main() -> None:
    run("lightcurve", LightcurveSettings, running)


if __name__ == "__main__":
    main()
