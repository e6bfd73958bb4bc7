from services.photometry.app import running
from services.photometry.settings import PhotometrySettings
from shared.runtime import run


def main() -> None:
    run("photometry", PhotometrySettings, running)


if __name__ == "__main__":
    main()
