# ruff: noqa
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PublicDealsV3Api(_message.Message):
    __slots__ = ("deals", "eventType")
    DEALS_FIELD_NUMBER: _ClassVar[int]
    EVENTTYPE_FIELD_NUMBER: _ClassVar[int]
    deals: _containers.RepeatedCompositeFieldContainer[PublicDealsV3ApiItem]
    eventType: str
    def __init__(self, deals: _Optional[_Iterable[_Union[PublicDealsV3ApiItem, _Mapping]]] = ..., eventType: _Optional[str] = ...) -> None: ...

class PublicDealsV3ApiItem(_message.Message):
    __slots__ = ("price", "quantity", "tradeType", "time")
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    TRADETYPE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    price: str
    quantity: str
    tradeType: int
    time: int
    def __init__(self, price: _Optional[str] = ..., quantity: _Optional[str] = ..., tradeType: _Optional[int] = ..., time: _Optional[int] = ...) -> None: ...
