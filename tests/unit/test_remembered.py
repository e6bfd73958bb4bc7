"""What a process remembers for a while: recalled within its time, forgotten after it or past the size."""
from shared.remembered import Remembered


def test_a_value_is_recalled_within_its_time_and_the_oldest_goes_past_the_size():
    memory = Remembered()
    memory.keep("a", {"n": 1}, max_items=2)
    assert memory.recall("a", keep_s=60.0) == {"n": 1}
    assert memory.recall("a", keep_s=0.0) is None and memory.recall("b", keep_s=60.0) is None
    memory.keep("b", 2, max_items=2)
    memory.keep("a", 3, max_items=2)  # kept again: now the newest
    memory.keep("c", 4, max_items=2)
    assert list(memory) == ["a", "c"] and memory.recall("a", keep_s=60.0) == 3
    memory.clear()
    assert memory.recall("c", keep_s=60.0) is None
