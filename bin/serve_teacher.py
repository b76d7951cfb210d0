"""Serves a SavedModel over the TensorFlow Serving REST predict protocol on localhost.

  python bin/serve_teacher.py --savedmodel=runs/teacher/teacher --port=8501
  curl -d '{"instances": [...]}' localhost:8501/v1/models/teacher:predict

For demos and tests: --token_env requires a bearer token, and --error_rate / --latency
inject faults so clients' retries can be exercised.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kd_keras import cli  # noqa: E402

flags = cli.flags
flags.DEFINE_string("savedmodel", None, "SavedModel folder to serve.", required=True)
flags.DEFINE_string("model_name", "teacher", "Name in the URL: /v1/models/NAME:predict.")
flags.DEFINE_string("host", "127.0.0.1", "Address to listen on.")
flags.DEFINE_integer("port", 8501, "Port to listen on (0 picks a free one).")
flags.DEFINE_string("token_env", None, "Environment variable with the bearer token clients "
                    "must send; none means no check.")
flags.DEFINE_float("error_rate", 0.0, "Fault injection: share of requests answered with HTTP 503.")
flags.DEFINE_float("latency", 0.0, "Fault injection: seconds added to every request.")
flags.DEFINE_integer("fail_first", 0, "Fault injection: answer the first N requests with 503.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from kd_keras.errors import KdKerasError
    from kd_keras.teachers import SavedModelBackend
    from kd_keras.teachers.server import PredictServer

    token = None
    if FLAGS.token_env:
        token = os.environ.get(FLAGS.token_env)
        if not token:
            raise KdKerasError(f"--token_env: ${FLAGS.token_env} is not set")
    backend = SavedModelBackend(FLAGS.savedmodel)
    server = PredictServer(backend.predict, FLAGS.model_name, FLAGS.host, FLAGS.port, token=token,
                           error_rate=FLAGS.error_rate, latency_seconds=FLAGS.latency,
                           fail_first=FLAGS.fail_first)
    print(f"serving {FLAGS.savedmodel} at {server.url}:predict", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def entry():
    cli.run(main)


if __name__ == "__main__":
    entry()
