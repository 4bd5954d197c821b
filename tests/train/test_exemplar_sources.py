"""The exemplar registry: several exemplars per family, each with a package and license; archive members are
extracted once; scikit-image's files are found without importing it."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from PIL import Image

from srkit.errors import SrkitError
from srkit.train import exemplar_sources as sources


def test_every_family_has_several_exemplars_each_with_a_package_and_license():
    for family in sources.FAMILY_NAMES:
        entries = sources.family_sources(family)
        assert len(entries) >= 2, family
        for entry in entries:
            assert entry.package in sources.LICENSES and entry.license
    names = [(entry.package, entry.member or entry.file) for entry in sources.REGISTRY]
    assert len(names) == len(set(names))
    assert {"stone", "wood", "fabric", "grass"} <= set(sources.FAMILY_NAMES)


def test_an_unknown_family_is_one_line_naming_the_choices():
    with pytest.raises(SrkitError, match="unknown exemplar family 'lava'; choose one of stone, "):
        sources.family_sources("lava")


def test_scikit_image_exemplars_resolve_to_its_data_folder():
    import skimage

    path = sources.exemplar_path(next(s for s in sources.REGISTRY if s.package == "scikit-image"))
    assert path.parent.samefile(sources.Path(skimage.__file__).parent / "data") and path.is_file()
    assert sources.records([path]) == [
        next(s for s in sources.REGISTRY if s.package == "scikit-image" and s.name == path.name).record()
    ]


def test_an_archive_member_is_extracted_once_into_the_cache_and_recorded(tmp_path, monkeypatch):
    pixels = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    archive = tmp_path / "pak.pk3"
    with zipfile.ZipFile(archive, "w") as pack:
        with pack.open("textures/a/rock.png", "w") as member:
            Image.fromarray(pixels).save(member, format="PNG")
    monkeypatch.setenv(sources.CACHE_ENV, str(tmp_path / "cache"))
    entry = sources.ExemplarSource("stone", "openarena-081-textures", str(archive), "textures/a/rock.png")
    monkeypatch.setattr(sources, "REGISTRY", (entry,))
    path = sources.exemplar_path(entry)
    assert path == tmp_path / "cache" / "openarena-081-textures" / "textures/a/rock.png"
    np.testing.assert_array_equal(np.asarray(Image.open(path)), pixels)
    assert [p.name for p in path.parent.iterdir()] == ["rock.png"]  # no partial left beside it
    assert sources.records([path]) == [
        {"path": f"{archive}:textures/a/rock.png", "package": "openarena-081-textures", "license": entry.license}
    ]


def test_a_missing_package_names_what_to_install(tmp_path):
    entry = sources.ExemplarSource("sand", "openarena-081-textures", str(tmp_path / "absent.pk3"), "x.jpg")
    with pytest.raises(SrkitError, match="absent.pk3: not installed; install the openarena-081-textures package"):
        sources.exemplar_path(entry)


def test_training_data_is_named_portably_and_located_again_on_another_machine(tmp_path, monkeypatch):
    """A shipped generator names an archive member as ARCHIVE:MEMBER, scikit-image's data under $SKIMAGE_DATA and
    any other file by its path; `locate` finds each again, extracting the member afresh into an empty cache."""
    import skimage

    archive = tmp_path / "pak.pk3"
    with zipfile.ZipFile(archive, "w") as pack:
        pack.writestr("textures/g/grass.jpg", b"not really a jpeg")
    member = sources.ExemplarSource("grass", "openarena-081-textures", str(archive), "textures/g/grass.jpg")
    monkeypatch.setattr(sources, "REGISTRY", (member,))
    monkeypatch.setenv(sources.CACHE_ENV, str(tmp_path / "cache"))
    extracted = sources.exemplar_path(member)
    own = tmp_path / "mine.png"
    own.write_bytes(b"x")
    gravel = sources.Path(skimage.__file__).parent / "data" / "gravel.png"
    names = [sources.portable(path) for path in (extracted, gravel, own)]
    assert names == [f"{archive}:textures/g/grass.jpg", "$SKIMAGE_DATA/gravel.png", str(own.resolve())]
    monkeypatch.setenv(sources.CACHE_ENV, str(tmp_path / "other-cache"))  # another machine: nothing extracted yet
    located = [sources.locate(name) for name in names]
    assert located[0] == tmp_path / "other-cache" / "openarena-081-textures" / "textures/g/grass.jpg"
    assert located[0].read_bytes() == b"not really a jpeg"
    assert located[1].samefile(gravel) and located[2] == own.resolve()
    archive.unlink()
    monkeypatch.setenv(sources.CACHE_ENV, str(tmp_path / "third-cache"))
    with pytest.raises(SrkitError, match="pak.pk3: not installed; install the openarena-081-textures package"):
        sources.locate(names[0])
