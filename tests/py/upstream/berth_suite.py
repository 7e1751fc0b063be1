"""pytest plugin for docker-py's integration suite run offline against an engine.

Loaded with `-p berth_suite` (its directory on PYTHONPATH). It
- deselects what selection.txt says, with the count and reasons in the header;
- keeps the stand-in images in place: the suite untags `hello-world` and friends, so
  before each test every expected tag is pointed back at the imported stand-in.
"""
import fnmatch
import os
import pathlib

import docker
import pytest

SELECTION = pathlib.Path(__file__).with_name('selection.txt')
SOURCE = 'busybox:buildroot-2014.02'
TAGS = ['busybox:latest', 'alpine:3.10', 'alpine:latest', 'hello-world:latest']


def suite_version(root='.'):
    """The suite's docker-py version (VERSION, written by `cargo xtask test`)."""
    try:
        return pathlib.Path(root, 'VERSION').read_text().strip()
    except OSError:
        return '7.2.0'


def load_selection(version=None, path=SELECTION):
    """(deselect patterns, known failures) for the suite of `version`: each a list of
    (pattern, reason). `deselect-X.Y.Z` lines apply to that suite version only."""
    version = version or suite_version()
    deselect, known = [], []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        body, _, reason = line.partition('#')
        kind, _, pattern = body.strip().partition(' ')
        entry = (pattern.strip(), reason.strip())
        if kind == 'deselect' or kind == f'deselect-{version}':
            deselect.append(entry)
        elif kind == 'known':
            known.append(entry)
        elif not kind.startswith('deselect-'):
            raise ValueError(f'{path}: unknown line kind {kind!r}: {line}')
    return deselect, known


def pytest_collection_modifyitems(config, items):
    deselect, _ = load_selection()
    keep, drop = [], []
    for item in items:
        if any(fnmatch.fnmatchcase(item.nodeid, p) for p, _ in deselect):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    config._berth_selection = (len(keep), len(drop))


def pytest_report_header(config):
    deselect, known = load_selection()
    return [f'berth selection for the docker-py {suite_version()} suite: {SELECTION} '
            f'({len(deselect)} deselect patterns, {len(known)} known failures)']


@pytest.fixture(autouse=True)
def _berth_standin_images():
    client = docker.APIClient(version='auto', **docker.utils.kwargs_from_env())
    try:
        source = client.inspect_image(SOURCE)['Id']
        for tag in TAGS:
            try:
                if client.inspect_image(tag)['Id'] == source:
                    continue
            except docker.errors.NotFound:
                pass
            repo, name = tag.split(':')
            client.tag(source, repo, name, force=True)
    finally:
        client.close()
    yield
