from shared.runtime import run
from services.imaging import running_for


def main() -> None:
    run("photometry", running_for("photometry", "image.solved.v1"))


if __name__ == "__main__":
    main()
