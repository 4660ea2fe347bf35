"""Pure dialing-policy functions (no I/O, no clock): testable without a server.

They build on campaign_engine.calls only; campaign_engine.models uses their models.
"""
