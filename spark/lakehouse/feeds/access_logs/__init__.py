"""The access logs feed: its parser (parse) and its silver step (silver); registered in lakehouse.feeds."""
