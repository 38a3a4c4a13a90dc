"""Chat channels' own protocols: request signatures, update shapes and the calls that answer.

No rules and no storage live here (services/integrations.py and services/channel_events.py
hold those); each module speaks one channel's wire format.
"""
