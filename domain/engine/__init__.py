"""Pure transition logic: given a definition, a case aggregate, facts and a time, apply a command.

No I/O: the service layer gathers the facts, calls one transition, and persists what the
aggregate recorded. Every refusal raises a DomainError before anything is recorded.
"""
