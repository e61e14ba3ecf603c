"""Presenters: service results shaped for the page (plain Python, no Reflex).

The layer between ``services`` and ``states``: a presenter reads through services
and turns figures into what the page shows (display strings, colours, labels, chart
rows), so a state only copies fields and a component only renders them. Presenters
import services, never Reflex; states and components import presenters; services
never import presenters.

- :mod:`.format`: numbers, durations, money and times as the monitor shows them;
- :mod:`.dashboard`: the monitor's KPIs, charts, change markers and its one load;
- :mod:`.requests`: the request table's rows and one request's detail;
- :mod:`.window_input`: the monitor's window choice and custom range inputs;
- :mod:`.spend`: the "Top spenders" panel and the budget bars;
- :mod:`.versions`: the "Did the change help?" card;
- :mod:`.alerts_panel`: the Alerts panel's rows;
- :mod:`.chat_screen`: the chat's bubbles and which of the chat state's lists hold them.
"""
