"""Plain Scrapy settings: nothing here knows about shopkeeper."""

BOT_NAME = "chainbot"
SPIDER_MODULES = ["chainbot.spiders"]
NEWSPIDER_MODULE = "chainbot.spiders"
ROBOTSTXT_OBEY = False
USER_AGENT = "chainbot (+https://example.com)"
CONCURRENT_REQUESTS = 8
LOG_LEVEL = "INFO"
TELNETCONSOLE_ENABLED = False
