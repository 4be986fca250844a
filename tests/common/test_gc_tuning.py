from __future__ import annotations

import gc

from spie.common.gc_tuning import BULK_THRESHOLD, bulk_gc


def test_bulk_settings_apply_inside_and_are_restored_after() -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    with bulk_gc():
        assert gc.get_threshold() == BULK_THRESHOLD
        assert gc.get_freeze_count() > frozen_before  # the objects alive at the start
        assert gc.isenabled()  # cycles are still collected
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen_before


def test_settings_restored_when_the_work_fails() -> None:
    before = gc.get_threshold()
    try:
        with bulk_gc():
            raise RuntimeError("import failed")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
