-- One row per raw email event, cleaned and typed (ESP spellings mapped), nothing judged
-- yet: a view, so customer_consent reads every withdrawal the moment it lands, and
-- base_email__events (incremental, through the same macro) judges and dedupes them.
{{ segwise.email_events_typed() }}
