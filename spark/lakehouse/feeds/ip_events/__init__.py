"""The ip events feed: its parser (parse) and its silver step (silver); registered in lakehouse.feeds."""
