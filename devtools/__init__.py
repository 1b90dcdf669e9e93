"""Development and test tools (the fake SMS provider). Not a Django app.

The product (accounts, api, campaigns, providers, recipients, relay, smsportal) never
imports from here; ``tests/fake_provider/test_layout.py`` checks it.
"""
