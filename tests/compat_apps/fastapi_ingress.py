from ray import serve
# ruff: noqa: I001 -- the line above must stay first: the harness swaps it for serve_core.

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

api = FastAPI(title="shop")


class Item(BaseModel):
    name: str = Field(min_length=1)
    price: float = Field(gt=0)
    quantity: int = 1


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
@serve.ingress(api)
class Shop:
    def __init__(self, currency: str) -> None:
        self.currency = currency
        self.catalog = {1: "apple", 2: "pear"}

    @api.get("/items/{item_id}")
    def get_item(self, item_id: int, verbose: bool = False, q: str | None = None) -> dict:
        if item_id not in self.catalog:
            raise HTTPException(status_code=404, detail=f"no item {item_id}")
        result = {"item_id": item_id, "name": self.catalog[item_id], "q": q}
        if verbose:
            result["currency"] = self.currency
        return result

    @api.post("/items")
    def create_item(self, item: Item) -> dict:
        return {"name": item.name, "total": round(item.price * item.quantity, 2), "currency": self.currency}

    @api.get("/")
    def root(self) -> str:
        return "shop is open"


app = Shop.bind("EUR")

ROUTE_PREFIX = "/shop"

# fmt: off
PROBES = [
    {"kind": "http", "method": "GET", "path": "/", "json": None, "params": None},
    {"kind": "http", "method": "GET", "path": "/items/1", "json": None, "params": {"q": "fresh", "verbose": "true"}},
    {"kind": "http", "method": "GET", "path": "/items/2", "json": None, "params": None},
    {"kind": "http", "method": "GET", "path": "/items/9", "json": None, "params": None, "expect_status": 404},
    # Path parameter fails int validation.
    {"kind": "http", "method": "GET", "path": "/items/abc", "json": None, "params": None, "expect_status": 422},
    {"kind": "http", "method": "POST", "path": "/items", "json": {"name": "apple", "price": 1.25, "quantity": 4}, "params": None},
    {"kind": "http", "method": "POST", "path": "/items", "json": {"name": "pear", "price": 2.5}, "params": None},
    # Invalid bodies: missing field and constraint violation -> FastAPI 422.
    {"kind": "http", "method": "POST", "path": "/items", "json": {"price": 1.0}, "params": None, "expect_status": 422},
    {"kind": "http", "method": "POST", "path": "/items", "json": {"name": "x", "price": -3}, "params": None, "expect_status": 422},
    {"kind": "http", "method": "GET", "path": "/openapi.json", "json": None, "params": None, "compare": "keys"},
    {"kind": "http", "method": "GET", "path": "/docs", "json": None, "params": None, "compare": "status"},
    {"kind": "http", "method": "GET", "path": "/nope", "json": None, "params": None, "expect_status": 404},
    # Ingress methods stay callable as normal methods through a handle.
    {"kind": "handle", "method_name": "get_item", "args": [2]},
]
# fmt: on
