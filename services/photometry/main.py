from shared.runtime import run
from services.photometry.app import running


def main() -> None:
    run("photometry", running)


if __name__ == "__main__":
    main()
