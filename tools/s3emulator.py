"""The local S3 service the durable broker stores in (KAFKA_STORAGE=durable):
localbucket, with Nagle's algorithm turned off.

    python tools/s3emulator.py FOLDER --host 127.0.0.1 --port PORT

Its handler answers in several small writes; with Nagle's algorithm on, each
keep-alive request then waits ~40 ms for the client's delayed ACK, so the
broker served ~25 requests a second and a record took 4-11 s from producer
to consumer (measured). With it off, 20-90 ms.
"""

import localbucket


def main() -> None:
    localbucket.S3Handler.disable_nagle_algorithm = True
    localbucket.main()


if __name__ == "__main__":
    main()
