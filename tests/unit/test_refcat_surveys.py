"""The one survey registry: every name resolves the same way at import, in presets and in forceFilter."""
import pytest

from services.calibration.science._select import parse_force_filter
from shared.refcat.presets import PRESETS, RefcatError, choose_preset, find_preset, get_preset
from shared.refcat.surveys import (
    DEMO_SURVEY,
    SURVEYS,
    SurveyNameError,
    canonical_name,
    check_synthetic,
    import_version,
    lookup,
    resolve,
    same_survey,
)


@pytest.mark.parametrize("name, canonical", [
    ("REFCAT2", "ATLAS"), ("refcat2", "ATLAS"), ("ATLAS-RefCat2", "ATLAS"), ("atlas", "ATLAS"),
    (" ATLAS  RefCat2 ", "ATLAS"), ("GAIA", "GaiaDR3"), ("gaia-dr3", "GaiaDR3"), ("GaiaDR3", "GaiaDR3"),
    ("APASS9", "APASS"), ("apassdr9", "APASS"), ("II/336/apass9", "APASS"), ("gaia2", "GaiaDR2"),
    ("panstarrs", "PS1"), ("synth-demo", DEMO_SURVEY),
])
def test_aliases_resolve_to_the_canonical_survey_in_any_case(name, canonical):
    assert canonical_name(name) == canonical
    assert resolve(name).registered and resolve(name).name == canonical
    assert same_survey(name, canonical)


def test_a_name_the_registry_does_not_know_is_a_survey_of_its_own():
    got = resolve("  MyCat ")
    assert (got.name, got.registered, got.release) == ("MyCat", False, None)
    assert canonical_name("MyCat") == "MyCat" and same_survey("mycat", "MyCat") and not same_survey("MyCat", "APASS")
    with pytest.raises(SurveyNameError, match="empty"):
        resolve("  ")


def test_every_spelling_names_one_survey_and_every_preset_has_its_survey():
    seen = {}
    for survey in SURVEYS:
        for spelling in (survey.name, *survey.aliases):
            key = " ".join(spelling.split()).lower()
            assert seen.setdefault(key, survey.name) == survey.name, spelling
            assert lookup(spelling) is survey
        assert find_preset(survey.preset) is not None, survey.name
        assert set(survey.releases) <= set(survey.aliases) | {survey.name}
    assert {p.survey for p in PRESETS} <= {s.name for s in SURVEYS}


def test_a_name_that_says_a_release_fixes_the_version():
    apass9 = resolve("APASSDR9")
    assert apass9.release == "DR9" and import_version(apass9, None, "x") == "DR9"
    assert import_version(apass9, "dr9", "x") == "dr9"
    with pytest.raises(SurveyNameError, match="means APASS DR9"):
        import_version(apass9, "DR10", "x")
    assert import_version(resolve("APASS"), "DR10", "x") == "DR10"
    assert import_version(resolve("MyCat"), None, "7") == "7"
    assert import_version(resolve(DEMO_SURVEY), None, "DR9") == "synthetic-demo-1"


def test_presets_and_choose_preset_resolve_through_the_registry():
    assert get_preset("REFCAT2").key == "atlas-refcat2" and get_preset("GAIA").key == "gaiadr3"
    assert choose_preset(survey="REFCAT2").survey == "ATLAS"
    assert choose_preset(survey="APASSDR9", preset="apass9").survey == "APASS"
    assert choose_preset(survey="GAIA").survey == "GaiaDR3"
    demo = choose_preset(survey="synth-demo")
    assert (demo.survey, demo.version, demo.key) == (DEMO_SURVEY, "synthetic-demo-1", "apass9")
    with pytest.raises(RefcatError, match="means APASS DR9"):
        choose_preset(survey="APASSDR9", version="DR10")
    # a layout of another registered survey: only when the version says which release the file holds
    with pytest.raises(RefcatError, match="layout of GaiaDR2.*give --version"):
        choose_preset(survey="GaiaDR3", preset="gaiadr2-ldac")
    assert choose_preset(survey="GaiaDR3", preset="gaiadr2-ldac", version="DR3").version == "DR3"
    assert choose_preset(survey="MyCat", preset="apass9").survey == "MyCat"


def test_synthetic_only_survey_refuses_real_stars():
    check_synthetic(DEMO_SURVEY, True)
    check_synthetic("APASS", False)
    with pytest.raises(SurveyNameError, match="synthetic demo field"):
        check_synthetic("synth-demo", False)


@pytest.mark.parametrize("text, parsed", [
    ("REFCAT2/i", ("ATLAS", "i")), ("refcat2/any", ("ATLAS", None)), ("ATLAS/i", ("ATLAS", "i")),
    ("GAIA/G", ("GaiaDR3", "G")), ("MyCat/V", ("MyCat", "V")), ("any/r", (None, "r")), ("no", None),
])
def test_force_filter_survey_part_goes_through_the_registry(text, parsed):
    assert parse_force_filter(text) == parsed


def test_cli_lists_the_registry():
    from typer.testing import CliRunner

    from shared.refcat.cli import app

    result = CliRunner().invoke(app, ["surveys"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    atlas = lines.index(next(line for line in lines if line.startswith("ATLAS ")))
    assert "RefCat2" in lines[atlas] and "REFCAT2" in lines[atlas + 1]
    assert any(line.startswith(DEMO_SURVEY) and "synthetic" in line for line in lines)
