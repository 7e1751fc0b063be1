"""docker-py drives a container lifecycle against Berth: create, start, logs, wait,
inspect, remove. Run by tests/tests/docker_py.rs with DOCKER_HOST and IMAGE set."""
import os
import sys

import docker

client = docker.DockerClient(base_url=os.environ["DOCKER_HOST"], version="auto")
image = os.environ["IMAGE"]

assert client.ping()
assert client.version()["ApiVersion"] == "1.53"
img = client.images.get(image)
assert img.id.startswith("sha256:"), img.id

c = client.containers.create(image, ["sh", "-c", "echo from-py; echo err >&2; exit 3"], name="py-life", labels={"via": "docker-py"})
assert c.status == "created", c.status
c.start()
result = c.wait(timeout=30)
assert result["StatusCode"] == 3, result
assert c.logs(stdout=True, stderr=False) == b"from-py\n", c.logs()
errs = c.logs(stdout=False, stderr=True)
assert errs == b"err\n", errs
c.reload()
assert c.attrs["State"]["ExitCode"] == 3
assert c.labels["via"] == "docker-py"
assert [x.name for x in client.containers.list(all=True, filters={"label": "via=docker-py"})] == ["py-life"]
c.remove()
assert client.containers.list(all=True) == []

# exec_run reads the exec's id as exec_create(...)["Id"], case-sensitively.
svc = client.containers.run(image, ["sleep", "60"], detach=True, name="py-exec")
code, output = svc.exec_run(["sh", "-c", "echo in-exec-$((6*7))"])
assert (code, output) == (0, b"in-exec-42\n"), (code, output)
svc.remove(force=True)

out = client.containers.run(image, ["echo", "run-and-remove"], remove=True)
assert out == b"run-and-remove\n", out
print("docker-py lifecycle ok")
sys.exit(0)
