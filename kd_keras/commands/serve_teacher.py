"""Serves a SavedModel over the TensorFlow Serving predict protocols on localhost: REST,
and gRPC too when --grpc_port is given (as tensorflow_model_server does).

  python bin/serve_teacher.py --savedmodel=runs/teacher/teacher --port=8501 --grpc_port=8500
  curl -d '{"instances": [...]}' localhost:8501/v1/models/teacher:predict
  python bin/distill.py ... --teacher=grpc://127.0.0.1:8500/models/teacher

For demos and tests: --token_env requires a bearer token, and --error_rate / --latency
inject faults so clients' retries can be exercised.
"""

import os
import sys

from kd_keras import cli

flags = cli.flags
flags.DEFINE_string("savedmodel", None, "SavedModel folder to serve.", required=True)
flags.DEFINE_string("model_name", "teacher", "Name in the URL: /v1/models/NAME:predict.")
flags.DEFINE_string("host", "127.0.0.1", "Address to listen on.")
flags.DEFINE_integer("port", 8501, "REST port to listen on (0 picks a free one).")
flags.DEFINE_integer("grpc_port", None, "Also serve gRPC (TF Serving PredictionService) on this "
                     "port (0 picks a free one); none means REST only.")
flags.DEFINE_string("tls_cert", None, "PEM certificate chain: serve gRPC over TLS (grpcs://); "
                    "needs --tls_key.")
flags.DEFINE_string("tls_key", None, "PEM private key for --tls_cert.")
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
    from kd_keras.teachers.backends import read_pem
    from kd_keras.teachers.server import GrpcPredictServer, PredictServer

    token = None
    if FLAGS.token_env:
        token = os.environ.get(FLAGS.token_env)
        if not token:
            raise KdKerasError(f"--token_env: ${FLAGS.token_env} is not set")
    tls = None
    if FLAGS.tls_cert or FLAGS.tls_key:
        if not (FLAGS.tls_cert and FLAGS.tls_key and FLAGS.grpc_port is not None):
            raise KdKerasError("TLS needs --tls_cert, --tls_key and --grpc_port together")
        tls = (read_pem(FLAGS.tls_key, "--tls_key"), read_pem(FLAGS.tls_cert, "--tls_cert"))
    if not token and FLAGS.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {FLAGS.host} without --token_env: anyone who reaches this "
              "address can query the model", file=sys.stderr, flush=True)
    backend = SavedModelBackend(FLAGS.savedmodel)
    common = dict(token=token, error_rate=FLAGS.error_rate, latency_seconds=FLAGS.latency,
                  fail_first=FLAGS.fail_first)
    try:
        server = PredictServer(backend.predict, FLAGS.model_name, FLAGS.host, FLAGS.port, **common)
    except OSError as e:
        raise KdKerasError(f"cannot serve REST on {FLAGS.host}:{FLAGS.port}: {e}") from None
    print(f"serving {FLAGS.savedmodel} at {server.url}:predict", flush=True)
    grpc_server = None
    if FLAGS.grpc_port is not None:
        try:
            grpc_server = GrpcPredictServer(
                backend.predict, FLAGS.model_name, FLAGS.host, FLAGS.grpc_port, **common,
                input_name=backend.input_name, input_shape=backend.input_shape,
                output_names=backend.output_names, tls=tls).start()
        except (OSError, RuntimeError) as e:
            raise KdKerasError(f"cannot serve gRPC on {FLAGS.host}:{FLAGS.grpc_port}: {e}") from None
        print(f"serving {FLAGS.savedmodel} at {grpc_server.url}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        if grpc_server:
            grpc_server.close()


def entry():
    cli.run(main)


if __name__ == "__main__":
    entry()
