def test_yearend_cancel_after_payment_is_reversed(world):
    world.add(
        {"id": "b1", "type": "ex_booking", "member": "W1", "at": "2025-12-01T10:00:00", "amount": 12000,
         "service": "ex", "ride_date": "2025-12-27", "segments": ["tokaido", "sanyo"], "ticketless": True},
        {"id": "b2", "type": "ex_booking", "member": "W1", "at": "2025-12-02T10:00:00", "amount": 30000,
         "service": "ex", "ride_date": "2025-12-28", "segments": ["sanyo"]},
        {"id": "c1", "type": "cancel", "member": "W1", "at": "2026-03-10T10:00:00", "ref": "b2"},
    )
    world.run("2026-04-01")
    assert world.balance("W1", "2026-02-05")["basic"] == 30000
    assert world.balance("W1")["basic"] == 12000
    assert world.paid("yearend-2025", "W1") == 12000
