from shared.runtime import run
from services.imaging import running_for


def main() -> None:
    run("astrometry", running_for("astrometry", "image.received.v1"))


if __name__ == "__main__":
    main()
