"""docker-py drives volumes against Berth: create with labels, use from containers,
list with filters, in-use conflict, remove, prune. Run by tests/tests/docker_py.rs
with DOCKER_HOST and IMAGE set."""
import os

import docker

client = docker.DockerClient(base_url=os.environ["DOCKER_HOST"], version="auto")
image = os.environ["IMAGE"]

v = client.volumes.create("pyvol", labels={"via": "docker-py"})
assert v.name == "pyvol" and v.attrs["Scope"] == "local", v.attrs
out = client.containers.run(image, ["sh", "-c", "echo py > /d/f; cat /d/f"],
                            volumes={"pyvol": {"bind": "/d", "mode": "rw"}}, remove=True)
assert out == b"py\n", out
c = client.containers.create(image, ["cat", "/d/f"], volumes=["pyvol:/d:ro"])
try:
    v.remove()
    raise SystemExit("removing an in-use volume succeeded")
except docker.errors.APIError as e:
    assert e.status_code == 409 and "volume is in use" in str(e), e
c.start()
assert c.wait(timeout=30)["StatusCode"] == 0
assert c.logs() == b"py\n", c.logs()
mounts = c.attrs["Mounts"]
assert mounts[0]["Name"] == "pyvol" and mounts[0]["RW"] is False, mounts
c.remove(v=True)
assert [x.name for x in client.volumes.list(filters={"label": "via=docker-py"})] == ["pyvol"]
v.remove()
assert client.volumes.list() == []
client.volumes.create(labels={"anon": "no"})
pruned = client.volumes.prune(filters={"all": "true"})
assert len(pruned["VolumesDeleted"]) == 1, pruned
print("docker-py volumes ok")
