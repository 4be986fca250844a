"""Outgoing messages to people: e-mail (``mailer``) and printable letters (``letters``).

E-mails are always sent from a job (queue ``notifications``), never inside a request.
"""
